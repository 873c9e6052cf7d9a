"""Repository rule exposing the TensorFlow test oracle's Python.

TensorFlow 2.15 lives in the venv scripts/setup.sh creates (`.venv-tf` at
the workspace root, or $ESTUARY_TF_PYTHON). Compatibility tests run
`@tf_oracle//:python.sh`; when the venv is missing it fails with a message
saying how to create it. Never a dependency of the product.
"""

def _tf_oracle_impl(rctx):
    python = rctx.os.environ.get("ESTUARY_TF_PYTHON", "")
    if not python:
        root = str(rctx.path(rctx.attr.workspace_marker).dirname)
        python = root + "/.venv-tf/bin/python"
    # Checked when the test runs, not when the repository is fetched, so a
    # venv created after Bazel first looked is still found.
    rctx.file(
        "python.sh",
        "#!/bin/sh\nif [ -x '%s' ]; then exec '%s' \"$@\"; fi\n" % (python, python) +
        "echo 'TensorFlow oracle venv not found at %s: run scripts/setup.sh (or set ESTUARY_TF_PYTHON)' >&2\nexit 1\n" % python,
        executable = True,
    )
    rctx.file("BUILD.bazel", 'package(default_visibility = ["//visibility:public"])\n\nexports_files(["python.sh"])\n')

tf_oracle = repository_rule(
    implementation = _tf_oracle_impl,
    attrs = {"workspace_marker": attr.label(default = "//:WORKSPACE")},
    local = True,
    environ = ["ESTUARY_TF_PYTHON"],
)
