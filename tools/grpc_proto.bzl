"""cc_grpc_proto: C++ protobuf (and optionally gRPC) code from .proto files.

Runs Debian's /usr/bin/protoc with /usr/bin/grpc_cpp_plugin from a genrule.
Import paths are relative to the workspace root (`import "proto/x.proto";`).
"""

def cc_grpc_proto(name, srcs, deps = [], grpc = True, visibility = None):
    """Declares `name`, a cc_library with the generated code of `srcs`.

    Args:
      name: target name.
      srcs: .proto files in this package.
      deps: other cc_grpc_proto targets whose protos `srcs` import.
      grpc: also generate gRPC service stubs.
      visibility: as usual.
    """
    outs_h = []
    outs_cc = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs_h.append(base + ".pb.h")
        outs_cc.append(base + ".pb.cc")
        if grpc:
            outs_h.append(base + ".grpc.pb.h")
            outs_cc.append(base + ".grpc.pb.cc")
    pkg = native.package_name()
    proto_paths = " ".join([(pkg + "/" + s) if pkg else s for s in srcs])
    grpc_flags = ""
    if grpc:
        grpc_flags = "--grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin "
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_srcs" for d in deps],
        outs = outs_h + outs_cc,
        cmd = "/usr/bin/protoc -I. --cpp_out=$(GENDIR) " + grpc_flags + proto_paths,
        message = "protoc " + proto_paths,
    )
    native.filegroup(
        name = name + "_srcs",
        srcs = srcs + [d + "_srcs" for d in deps],
        visibility = visibility,
    )
    native.cc_library(
        name = name,
        srcs = outs_cc,
        hdrs = outs_h,
        deps = deps + ["@sys//:protobuf"] + (["@sys//:grpc"] if grpc else []),
        visibility = visibility,
    )
