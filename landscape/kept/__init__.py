"""What a record's kept weights give back: the model of a run at a kept step (`models`), and
that model pruned and evaluated on the record's held-out images (`prune`). Loss surfaces around
kept weights are `landscape.surfaces`."""
