"""``python -m bbbcore batch``: thousands of images on Dask, resumable (see :mod:`bbbcore.batch`)."""

from __future__ import annotations

from pathlib import Path

from .cli_experiments import add_experiment_option


def add_batch(sub, add_segment_options) -> None:
    from functools import partial

    from .cli import positive_number  # here: bbbcore.cli imports this module

    count = partial(positive_number, integer=True)
    p = sub.add_parser(
        "batch", help="segment many images on Dask (this machine, a running scheduler or a SLURM/PBS/LSF cluster); "
                      "run it again to finish what is left",
        description="INPUT: files, folders (searched recursively) and globs. Each image's result is cached in "
                    "OUT/.bbb-cache by content, scene and settings: a second run skips what is done.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs ('plate*/*.tif')")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_segment_options(p)
    p.add_argument("--exports", action="store_true",
                   help="also write each image's ROI zip, GeoJSON and overlay PNG (the labels TIFF always)")
    g = p.add_argument_group("where it runs (default: worker processes on this machine)")
    g.add_argument("--workers", type=count("worker processes"), default=None, help="worker processes (default: one per core)")
    g.add_argument("--threads-per-worker", type=count("threads"), default=None, help="inference threads per worker")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS", help="join a running Dask scheduler")
    g.add_argument("--cluster", choices=["slurm", "pbs", "lsf"], default=None, help="start dask-jobqueue workers")
    g.add_argument("--cores", type=count("cores"), default=4, help="cores per cluster job")
    g.add_argument("--memory", default="8GB", help="memory per cluster job")
    g.add_argument("--queue", default=None, help="the cluster's queue / partition")
    g.add_argument("--walltime", default="02:00:00", help="time limit per cluster job")
    g.add_argument("--jobs", type=count("cluster jobs"), default=1, help="cluster jobs to start")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs)")
    add_experiment_option(p)


def cmd_batch(args, samples_for, channels_for, diameter_for, pixel_size_for) -> int:
    from .batch import BatchSettings, list_inputs, run_batch

    settings = BatchSettings(model=str(args.model), channel=args.channel, pixel_size_um=args.pixel_size,
                             diameter_px=args.diameter, use_nuclei=args.nuclei_seeds,
                             junction_threshold=args.junction_threshold, max_projection=args.max_projection,
                             exports=args.exports)
    listing = list_inputs(args.inputs)  # each file opened once, for the sample sheet and the plan
    samples = samples_for(args, listing.image_names)

    def options(sample: dict) -> dict:
        return {**channels_for(args, sample), "pixel_size_um": pixel_size_for(args, sample),
                "diameter_px": diameter_for(args, sample), "sample": sample}

    writer = on_result = None
    if args.experiment:
        from .batch import cached_result
        from .cli_experiments import ExperimentWriter
        from .io import file_bytes

        writer = ExperimentWriter(args.experiment)
        stored = set(zip(*[writer.store.images(writer.experiment_id)[c] for c in ("name", "labels_sha")]))

        def on_result(task, folder) -> None:
            """The client stores each image (workers never write SQLite); those stored already are left."""
            from .store import sha256

            if (task.name, sha256((folder / "labels.tif").read_bytes())) in stored:
                return
            params = {"model": settings.model, "channel": task.options.get("channel"),
                      "use_nuclei": settings.use_nuclei, "junction_threshold": settings.junction_threshold,
                      "pixel_size_um": task.options.get("pixel_size_um"), "diameter_px": task.options.get("diameter_px")}
            writer.save(cached_result(task, folder, settings), file_bytes(Path(task.path)), params,
                        task.options.get("sample"))

    cluster_options = {"cores": args.cores, "memory": args.memory, "queue": args.queue, "walltime": args.walltime,
                       "jobs": args.jobs} if args.cluster else None
    report = run_batch(listing, args.out, settings, samples=samples, options_for=options, workers=args.workers,
                       threads_per_worker=args.threads_per_worker, scheduler=args.scheduler, cluster=args.cluster,
                       cluster_options=cluster_options, progress=not args.no_progress, on_result=on_result)
    print(report.line())
    if writer is not None:
        writer.done()
    return 1 if report.failed else 0
