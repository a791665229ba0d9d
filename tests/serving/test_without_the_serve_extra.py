"""
Without the `serve` extra, `--include-package allennlp_multitask` imports as before, and `allennlp serve` says what
to install.
"""

import subprocess
import sys
import textwrap

# Python with FastAPI, Starlette and uvicorn made unimportable, as in an environment without the `serve` extra.
WITHOUT_THE_STACK = "import sys\nfor name in ('fastapi', 'starlette', 'uvicorn'):\n    sys.modules[name] = None\n"


def run_without_the_stack(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_STACK + textwrap.dedent(code)], capture_output=True, text=True
    )


def test_include_package_imports_every_module_but_the_servers_own():
    done = run_without_the_stack(
        """
        from allennlp.common.util import import_module_and_submodules
        import_module_and_submodules("allennlp_multitask")
        """
    )
    assert done.returncode == 0, done.stderr


def test_allennlp_serve_names_the_extra_to_install(tmp_path):
    done = run_without_the_stack(
        f"""
        from allennlp.commands import main
        sys.argv = ["allennlp", "serve", "--archive-path", {str(tmp_path / "model.tar.gz")!r},
                    "--include-package", "allennlp_multitask"]
        main()
        """
    )
    assert done.returncode != 0 and "allennlp serve needs the serve extra" in done.stderr, done.stderr
