"""estuary_fuzzer: a libFuzzer harness and the test that replays its corpus.

`estuary_fuzzer(name = "x_fuzzer", ...)` makes
  - :x_fuzzer, a cc_binary defining LLVMFuzzerTestOneInput. Under
    --config=fuzz (clang, -fsanitize=fuzzer-no-link,address,undefined) it
    links libFuzzer's main (-fsanitize=fuzzer): scripts/fuzz.sh runs it.
    Elsewhere it links :standalone_main, which runs each file it is given
    once;
  - :x_fuzzer_corpus_test, which replays corpus/x_fuzzer/ (the seeds and
    every crash a fuzzer found, kept as regressions) through that binary,
    so the plain, asan and tsan test runs cover them too.
"""

def estuary_fuzzer(name, srcs, deps, testonly = False):
    native.cc_binary(
        name = name,
        srcs = srcs,
        testonly = testonly,
        deps = deps + select({
            "//fuzz:fuzzing": [],
            "//conditions:default": ["//fuzz:standalone_main"],
        }),
        linkopts = select({
            "//fuzz:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.sh_test(
        name = name + "_corpus_test",
        size = "small",
        srcs = ["//fuzz:corpus_test.sh"],
        args = ["$(location :%s)" % name, "fuzz/corpus/" + name],
        data = [":" + name] + native.glob(["corpus/%s/**" % name]),
    )
