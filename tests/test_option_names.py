"""Option names a reader can trust (issue 23): one word per meaning (`last-linear`, `end`,
`last` instead of three `final`s), no second spelling of one setting, the same --device default
everywhere, help text on every option, `record --help` under headings, and `info`'s run
length. Old names keep working and say so in one line."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from landscape.cli import COMMANDS, main
from landscape.cli._sections import OTHER, sectioned
from landscape.store import open_record

LAYER = "features.stage1.conv1"


def _record(tmp_path, tiny_args, name, extra):
    out = tmp_path / f"{name}.h5"
    result = CliRunner().invoke(main, ["record", *tiny_args, "--model", "vgg", "--lrs", "0.05",
                                       "--max-steps", "2", "--activation-layer", LAYER,
                                       *extra, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_old_names_still_work_and_say_so_once(tmp_path, tiny_args, one_thread):
    old, old_output = _record(tmp_path, tiny_args, "old", [
        "--seed", "3", "--tf32", "--tap", "final", "--save-weights-at", "0,final",
        "--activations-every", "2"])
    new, new_output = _record(tmp_path, tiny_args, "new", [
        "--seeds", "3", "--precision", "tf32", "--tap", "last-linear", "--save-weights-at",
        "0,end", "--activation-every", "2"])
    for flag in ("--seed N", "--tf32", "--tap final", "--save-weights-at final",
                 "--activations-every"):
        lines = [ln for ln in old_output.splitlines() if ln.startswith(f"Deprecated: {flag} ")]
        assert len(lines) == 1, (flag, old_output)
    assert "Deprecated" not in new_output
    a, b = open_record(old), open_record(new)
    assert a.config == b.config
    assert a.config["seeds"] == [3] or tuple(a.config["seeds"]) == (3,)
    assert a.config["precision"] == "tf32" and a.config["activation_every"] == 2
    assert a.config["save_final_weights"] and list(a.config["save_weights_at"]) == [0]
    (run,) = b.runs.values()
    assert run.taps == ("classifier.fc3.weight",)  # last-linear: VGG's last linear layer
    assert list(b.weight_steps(run.run_id)) == [0, 2]


def test_surface_step_last_is_the_last_kept_weights(tmp_path, tiny_args, one_thread, capsys):
    from landscape.cli.surface import _step
    out, _ = _record(tmp_path, tiny_args, "w", ["--save-weights-at", "0,end"])
    (run_id,) = open_record(out).runs
    assert _step(out, run_id, "last") == 2 and "Deprecated" not in capsys.readouterr().err
    assert _step(out, run_id, "final") == 2
    assert "Deprecated: --step final is now --step last" in capsys.readouterr().err


def test_info_says_how_long_a_run_is(tmp_path, tiny_args, one_thread):
    out, _ = _record(tmp_path, tiny_args, "i", [])
    result = CliRunner().invoke(main, ["info", str(out)])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("Training:"))
    assert "2 steps per run (--max-steps 2, before --epochs 20 end)" in line
    assert "at most" not in line


def _command(name: str) -> click.Command:
    """A subcommand of the (lazy) group, imported on demand."""
    return main.get_command(click.Context(main), name)


def _visible_options(command: click.Command, name: str) -> list[click.Option]:
    ctx = click.Context(command, info_name=name, parent=click.Context(main))
    return [p for p in command.get_params(ctx) if isinstance(p, click.Option) and not p.hidden]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help(name):
    missing = [p.opts[0] for p in _visible_options(_command(name), name) if not p.help]
    assert not missing, f"landscape {name}: no help text for {', '.join(missing)}"


def test_device_defaults_agree_and_prune_has_short_out():
    defaults = {name: p.default for name in COMMANDS for p in _command(name).params
                if p.name == "device"}
    assert len(defaults) >= 3 and set(defaults.values()) == {"auto"}, defaults
    (out,) = [p for p in _command("prune").params if p.name == "out"]
    assert "-o" in out.opts


def test_one_spelling_per_setting_in_record_help():
    text = CliRunner().invoke(main, ["record", "--help"]).output
    for hidden in ("--seed ", "--tf32", "--activations-every", "'final'"):
        assert hidden not in text, hidden
    assert "--seeds" in text and "--precision" in text and "--activation-every" in text


def _declared(line: str) -> list[str]:
    """The flags a help line declares: an option's own line is indented by 2 (wrapped help
    text by more) and names its flags before the first two spaces."""
    if not line.startswith("  -"):
        return []
    return re.findall(r"--?[\w-]+", line.strip().split("  ")[0])


def test_record_help_has_sections_and_lists_every_option_once():
    text = CliRunner().invoke(main, ["record", "--help"]).output
    headings = [ln.rstrip(":") for ln in text.splitlines() if ln and not ln[0].isspace()
                and ln.endswith(":")]
    assert {"What to train", "Optimizer and schedule", "Hessian probe",
            "Device and arithmetic"} <= set(headings)
    assert "Options" not in headings
    for option in _visible_options(_command("record"), "record"):
        flag = max(option.opts, key=len)
        assert sum(flag in _declared(ln) for ln in text.splitlines()) == 1, flag
    # every option sits under the heading the mapping gives it
    section = text.split("\nHessian probe:\n", 1)[1].split("\n\n", 1)[0]
    assert "--hessian-every" in section and "--probe-every" not in section


def test_an_option_missing_from_the_mapping_still_shows_under_other_options():
    @click.command(cls=sectioned([("Known", ("a",))]))
    @click.option("--a", help="listed")
    @click.option("--brand-new", help="added by someone else")
    @click.option("--secret", hidden=True)
    def cmd(a, brand_new, secret):
        pass

    text = CliRunner().invoke(cmd, ["--help"]).output
    known, other = text.split("Known:\n", 1)[1].split(f"{OTHER}:\n", 1)
    assert "--a" in known and "--brand-new" not in known
    assert "--brand-new" in other and "--help" in other and "--secret" not in text
    with pytest.raises(ValueError, match="both"):
        sectioned([("x", ("a",)), ("y", ("a",))])
