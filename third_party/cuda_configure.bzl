"""Repository rule that finds CUDA 13 and NCCL from NVIDIA's PyPI wheels.

The wheels `nvidia-cuda-nvcc`, `nvidia-cuda-runtime` and `nvidia-nccl-cu13`
install under `<site-packages>/nvidia/{cu13,nccl}`. The root is taken from
$ESTUARY_CUDA_SITE (the `nvidia` folder), else from the venv that
scripts/setup.sh creates (`.venv-cuda` at the workspace root). Only
`--config=cuda` builds use this repository; when the wheels are missing its
targets fail with a message saying how to install them, and the default build
never touches them.
"""

def _cuda_configure_impl(rctx):
    site = rctx.os.environ.get("ESTUARY_CUDA_SITE", "")
    if not site:
        root = str(rctx.path(rctx.attr.workspace_marker).dirname)
        venv_lib = rctx.path(root + "/.venv-cuda/lib")
        if venv_lib.exists:
            for py in venv_lib.readdir():
                cand = rctx.path(str(py) + "/site-packages/nvidia")
                if cand.exists:
                    site = str(cand)
    nvcc = rctx.path(site + "/cu13/bin/nvcc") if site else None
    if site and nvcc.exists:
        rctx.symlink(site + "/cu13", "cu13")
        rctx.symlink(site + "/nccl", "nccl")
        rctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

exports_files(["cu13/bin/nvcc"])

filegroup(
    name = "nvcc_files",
    srcs = glob(["cu13/**"]),
)

cc_library(
    name = "cuda_headers",
    hdrs = glob(["cu13/include/**"]),
    includes = [
        "cu13/include",
        "cu13/include/cccl",
    ],
)

# The runtime is linked statically (libcudart_static.a) so that binaries carry
# to a GPU machine with nothing but the driver.
cc_library(
    name = "cudart_static",
    srcs = ["cu13/lib/libcudart_static.a"],
    linkopts = ["-ldl", "-lrt", "-lpthread"],
    deps = [":cuda_headers"],
)

# NCCL ships only a shared library; binaries find it through their rpath or
# LD_LIBRARY_PATH.
cc_library(
    name = "nccl",
    srcs = ["nccl/lib/libnccl.so.2"],
    hdrs = glob(["nccl/include/**"]),
    includes = ["nccl/include"],
    linkopts = ["-Wl,-rpath,%s/nccl/lib"],
    deps = [":cuda_headers"],
)
""" % site)
    else:
        msg = "CUDA/NCCL wheels not found (looked at %s): run scripts/setup.sh --cuda or set ESTUARY_CUDA_SITE to the site-packages/nvidia folder" % (site or ".venv-cuda")
        rctx.file("missing.sh", "echo '%s' >&2; exit 1\n" % msg, executable = True)
        rctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

genrule(
    name = "missing",
    outs = ["missing.txt"],
    cmd = "$(location missing.sh)",
    tools = ["missing.sh"],
)

exports_files(["missing.sh", "cu13/bin/nvcc"])

filegroup(name = "nvcc_files", srcs = [":missing"])
cc_library(name = "cuda_headers", srcs = [":missing"])
cc_library(name = "cudart_static", srcs = [":missing"])
cc_library(name = "nccl", srcs = [":missing"])
""")
        rctx.file("cu13/bin/nvcc", "#!/bin/sh\n" + "echo '%s' >&2; exit 1\n" % msg, executable = True)

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    attrs = {"workspace_marker": attr.label(default = "//:WORKSPACE")},
    local = True,
    environ = ["ESTUARY_CUDA_SITE"],
)
