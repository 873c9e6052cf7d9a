#!/usr/bin/env python3
"""Writes the binary seed corpora of fuzz/ (the text ones are edited by hand).

Run from the repository root: python3 fuzz/make_seeds.py. Needs nothing but
Python: protobuf messages are encoded by hand (field numbers from
proto/checkpoint.proto and proto/example.proto).
"""
import os
import struct

CORPUS = "fuzz/corpus"


def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, b):
    return varint((num << 3) | 2) + varint(len(b)) + b


def field_fixed32(num, v):
    return varint((num << 3) | 5) + struct.pack("<I", v)


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def framed(records):
    out = b""
    for r in records:
        header = struct.pack("<Q", len(r))
        out += header + struct.pack("<I", masked(crc32c(header))) + r
        out += struct.pack("<I", masked(crc32c(r)))
    return out


def write(fuzzer, name, data):
    os.makedirs(os.path.join(CORPUS, fuzzer), exist_ok=True)
    with open(os.path.join(CORPUS, fuzzer, name), "wb") as f:
        f.write(data)


# tf.train.Example: Example.features(1) -> Features.feature(1) map entries
# (key 1, value 2) -> Feature{bytes_list 1, float_list 2, int64_list 3}, each
# list's values in field 1 (packed for numbers).
def feature(kind, values):
    if kind == "bytes":
        body = b"".join(field_bytes(1, v) for v in values)
        return field_bytes(1, body)
    if kind == "float":
        return field_bytes(2, field_bytes(1, b"".join(struct.pack("<f", v) for v in values)))
    return field_bytes(3, field_bytes(1, b"".join(varint(v) for v in values)))


def example(features):
    entries = b"".join(
        field_bytes(1, field_bytes(1, k.encode()) + field_bytes(2, feature(kind, vals)))
        for k, (kind, vals) in features.items())
    return field_bytes(1, entries)


full = example({"a": ("float", [1.5, -2]), "b": ("int", [7]), "c": ("bytes", [b"xyz"]),
                "d": ("float", [1, 2, 3, 4, 5, 6]), "e": ("float", [0.5]),
                "f": ("int", [1, 2, 3]), "g": ("bytes", [b"p", b"q"])})
sparse = example({"b": ("int", [-1]), "d": ("float", [0] * 6), "f": ("int", [])})
wrong = example({"a": ("int", [1]), "b": ("float", [1.0]), "d": ("float", [1])})
write("example_parser_fuzzer", "full", full)
write("example_parser_fuzzer", "batch", full + b"#EX#" + sparse + b"#EX#" + full)
write("example_parser_fuzzer", "wrong_types", sparse + b"#EX#" + wrong)
write("example_parser_fuzzer", "empty", b"")

# TFRecord: mode byte (bit 0 fix checksums, bit 1 gzip) + file.
records = [b"", b"hello", full, b"x" * 300]
write("tfrecord_fuzzer", "plain", b"\x00" + framed(records))
write("tfrecord_fuzzer", "fixup", b"\x05" + framed(records)[:-3])
with open("common/io/testdata/tf_written.tfrecord.gz", "rb") as f:
    write("tfrecord_fuzzer", "tf_written_gz", b"\x02" + f.read())
with open("common/io/testdata/tf_written.tfrecord", "rb") as f:
    write("tfrecord_fuzzer", "tf_written", b"\x40" + f.read())


# Checkpoint: CheckpointTensorEntry{name 1, dtype 2, shape 3 (packed),
# record_index 4, offset 5, size_bytes 6, crc32c 7, partition_full_rows 8,
# partition_index 9, partition_count 10}; ShardHeader{step 1, shard_index 2,
# num_shards 3, tensors 4}; ShardEntry{shard_index 1, file 2, size_bytes 3,
# file_crc32c 4, tensors 5}; Manifest{format_version 1, step 2,
# num_shards 3, shards 4}.
def tensor(name, dtype, shape, index, data, partition=None):
    t = field_bytes(1, name.encode()) + field_varint(2, dtype)
    if shape:
        t += field_bytes(3, b"".join(varint(d) for d in shape))
    t += field_varint(4, index) + field_varint(6, len(data)) + field_varint(7, crc32c(data))
    if partition:
        full_rows, pidx, pcount = partition
        t += field_varint(8, full_rows) + field_varint(9, pidx) + field_varint(10, pcount)
    return t


def checkpoint(mode, shards, step=1):
    """shards: list of [(name, dtype, shape, data, partition)]."""
    manifest = field_varint(1, 1) + field_varint(2, step) + field_varint(3, len(shards))
    files = []
    for i, tensors in enumerate(shards):
        entries = [tensor(n, dt, sh, j + 1, d, p) for j, (n, dt, sh, d, p) in enumerate(tensors)]
        header = (field_varint(1, step) + field_varint(2, i) + field_varint(3, len(shards)) +
                  b"".join(field_bytes(4, e) for e in entries))
        recs = [header] + [d for (_, _, _, d, _) in tensors]
        f = framed(recs)
        manifest += field_bytes(4, field_varint(1, i) + field_bytes(2, b"s%d" % i) +
                                field_varint(3, len(f)) + field_varint(4, crc32c(f)) +
                                b"".join(field_bytes(5, e) for e in entries))
        files.append(b"#REC#".join(recs))
    return bytes([mode]) + manifest + b"".join(b"#SHARD#" + f for f in files)


w = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
step = struct.pack("<q", 42)
write("checkpoint_fuzzer", "one_shard", checkpoint(0, [[("w", 1, [2, 3], w, None),
                                                        ("global_step", 2, [], step, None)]]))
write("checkpoint_fuzzer", "two_shards", checkpoint(0, [[("w", 1, [2, 3], w, None)],
                                                        [("global_step", 2, [], step, None)]]))
part0 = struct.pack("<4f", 1, 2, 3, 4)
part1 = struct.pack("<2f", 5, 6)
write("checkpoint_fuzzer", "partitioned", checkpoint(7, [[("emb", 1, [2, 2], part0, (3, 0, 2))],
                                                         [("emb", 1, [1, 2], part1, (3, 1, 2))]]))
write("checkpoint_fuzzer", "state_text",
      b"\x08" + b'model_checkpoint_path: "model.ckpt-1"\n'
      b'all_model_checkpoint_paths: "model.ckpt-1"\nall_model_checkpoint_timestamps: 1.5\n'
      b"last_preserved_timestamp: 0\n")
# A row partition of one 1024-float row claiming to be 1 of 2^31 - 1 of a
# 2^31 - 1 row variable: Restore allocated the whole 8 TiB before it
# checked the claim against the files (common/checkpoint_test.cc
# PartitionClaimingMoreThanTheFilesHoldIsDataLossBeforeAllocating).
big = 2**31 - 1
write("checkpoint_fuzzer", "crash-partition-alloc",
      checkpoint(7, [[("emb", 1, [1, 1024], bytes(4096), (big, 0, big))]]))
