"""Live battles: a voter's own prompt answered by two anonymous systems in the worker
(`battles`), streamed as it is produced (`streaming`), kept honest (`checks`, `leaks`)."""
