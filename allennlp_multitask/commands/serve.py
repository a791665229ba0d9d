"""
`allennlp serve`: a model archive served over HTTP, with allennlp-server's command line (`--archive-path`,
`--predictor`, `--cuda-device`, `--host`, `-p/--port`) and options for dynamic batching, heads and workers.
"""

import argparse

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError

from allennlp_multitask.serving.settings import ServeSettings


def serve_from_args(args: argparse.Namespace) -> None:
    settings = ServeSettings(
        archive_path=args.archive_path,
        predictor=args.predictor,
        cuda_device=args.cuda_device,
        host=args.host,
        port=args.port,
        include_package=list(getattr(args, "include_package", [])),
        batch_size=args.batch_size,
        max_wait_ms=args.max_wait_ms,
        active_heads=args.active_heads,
        workers=args.workers,
        max_body_bytes=args.max_body_bytes,
        max_batch_inputs=args.max_batch_inputs,
    )
    try:
        from allennlp_multitask.serving._server import serve
    except ImportError as error:
        raise ConfigurationError(
            f"allennlp serve needs the serve extra ({error}): pip install 'allennlp-multitask[serve]'."
        ) from error
    serve(settings)


@Subcommand.register("serve")
class Serve(Subcommand):
    """`allennlp serve --archive-path ARCHIVE [options]`: see `allennlp serve --help`."""

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Serve a model archive's predictions over HTTP, batching concurrent requests."
        subparser = parser.add_parser(self.name, description=description, help=description)
        defaults = ServeSettings(archive_path="")
        subparser.add_argument("--archive-path", required=True, help="the model.tar.gz to serve")
        subparser.add_argument("--predictor", default=defaults.predictor, help="the predictor")
        subparser.add_argument(
            "--cuda-device", type=int, default=defaults.cuda_device, help="GPU to run on; -1 for the CPU"
        )
        subparser.add_argument("--host", default=defaults.host, help="address to listen on")
        subparser.add_argument("-p", "--port", type=int, default=defaults.port, help="port")
        subparser.add_argument(
            "--batch-size",
            type=int,
            default=defaults.batch_size,
            help="most inputs in one forward pass",
        )
        subparser.add_argument(
            "--max-wait-ms",
            type=float,
            default=defaults.max_wait_ms,
            help="how long the first input of a batch waits for others, in milliseconds",
        )
        subparser.add_argument(
            "--active-heads", nargs="+", default=None, help="the heads that run (default: the model's active heads)"
        )
        subparser.add_argument(
            "--workers",
            type=int,
            default=defaults.workers,
            help="worker processes on the one port, each with its own model",
        )
        subparser.add_argument(
            "--max-body-bytes",
            type=int,
            default=defaults.max_body_bytes,
            help="largest request body taken, in bytes",
        )
        subparser.add_argument(
            "--max-batch-inputs",
            type=int,
            default=defaults.max_batch_inputs,
            help="most inputs in one /predict_batch list",
        )
        subparser.set_defaults(func=serve_from_args)
        return subparser
