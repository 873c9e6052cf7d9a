"""Repository rule that exposes system libraries found by pkg-config.

Each entry of `libraries` becomes a cc_library named after the key. Its value
lists pkg-config modules; an entry that starts with `-l` is passed straight
to the linker (for libraries that ship no .pc file, e.g. farmhash).
`pkg-config --cflags --libs` output is translated as: -I -> includes (the
directory is symlinked into this repository, since Bazel only accepts
relative include paths), -D -> defines, everything else -> linkopts.
"""

_DEFAULT_INCLUDE_DIRS = ["/usr/include", "/usr/local/include"]

def _sanitize(path):
    return "inc" + path.replace("/", "_").replace(".", "_").replace("-", "_")

def _pkg_config_impl(rctx):
    pkg_config = rctx.which("pkg-config")
    if pkg_config == None:
        fail("pkg-config not found: run scripts/setup.sh (apt-get install pkg-config)")
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    linked_dirs = {}
    for name, modules in rctx.attr.libraries.items():
        defines = []
        includes = []
        linkopts = []
        pc_modules = [m for m in modules if not m.startswith("-")]
        linkopts.extend([m for m in modules if m.startswith("-")])
        if pc_modules:
            res = rctx.execute([pkg_config, "--cflags", "--libs"] + pc_modules)
            if res.return_code != 0:
                fail("pkg-config failed for %s (%s): %s\nrun scripts/setup.sh to install the system packages" %
                     (name, " ".join(pc_modules), res.stderr))
            for tok in res.stdout.strip().split(" "):
                tok = tok.strip()
                if not tok:
                    continue
                if tok.startswith("-I"):
                    d = tok[2:]
                    if d in _DEFAULT_INCLUDE_DIRS:
                        continue
                    local = _sanitize(d)
                    if local not in linked_dirs:
                        rctx.symlink(d, local)
                        linked_dirs[local] = True
                    if local not in includes:
                        includes.append(local)
                elif tok.startswith("-D"):
                    if tok[2:] not in defines:
                        defines.append(tok[2:])
                elif tok not in linkopts or not tok.startswith("-l"):
                    linkopts.append(tok)
        lines.append("cc_library(")
        lines.append("    name = %r," % name)
        if includes:
            lines.append("    hdrs = glob([%s])," % ", ".join(["%r" % (i + "/**") for i in includes]))
            lines.append("    includes = %r," % includes)
        lines.append("    defines = %r," % defines)
        lines.append("    linkopts = %r," % linkopts)
        lines.append(")")
        lines.append("")
    rctx.file("WORKSPACE", "workspace(name = %r)\n" % rctx.name)
    rctx.file("BUILD.bazel", "\n".join(lines))

pkg_config_repository = repository_rule(
    implementation = _pkg_config_impl,
    attrs = {"libraries": attr.string_list_dict(mandatory = True)},
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)
