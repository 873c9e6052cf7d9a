// google/protobuf/map_field.h as --config=tsan compiles it: put first on
// @sys//:protobuf's include path by third_party/pkg_config.bzl when
// ESTUARY_SYS_TSAN=1 (.bazelrc's tsan config), so every translation unit
// that includes the real header gets it through here.
//
// Why: Protobuf 3.21's map_field.h gives MapFieldBase two extra members,
// seq1_ and seq2_ (a const/mutable access check for TSAN), when
// __SANITIZE_THREAD__ is defined, ahead of arena_ and repeated_field_. Our
// code, compiled with -fsanitize=thread, then lays out every map field of
// every generated message differently from Debian's libprotobuf.so (built
// without it), and the two read each other's members: reflection on a map
// field (TextFormat parsing model_server_config's version_labels in
// //serving:config_test, DebugString, ...) takes the arena pointer for
// the repeated field and crashes in RepeatedPtrFieldBase::Clear. Hiding
// the macro for this header alone gives the library's layout everywhere.
// The check itself is lost; TSAN still sees map fields' memory accesses.
#ifndef ESTUARY_THIRD_PARTY_TSAN_PROTOBUF_MAP_FIELD_H_
#define ESTUARY_THIRD_PARTY_TSAN_PROTOBUF_MAP_FIELD_H_

// What map_field.h includes, first, so that they see the macro as usual.
#include <atomic>
#include <functional>

#include <google/protobuf/arena.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/generated_message_reflection.h>
#include <google/protobuf/generated_message_util.h>
#include <google/protobuf/map_entry.h>
#include <google/protobuf/map_field_lite.h>
#include <google/protobuf/map_type_handler.h>
#include <google/protobuf/message.h>
#include <google/protobuf/port.h>
#include <google/protobuf/repeated_field.h>
#include <google/protobuf/stubs/mutex.h>
#include <google/protobuf/unknown_field_set.h>

#pragma push_macro("__SANITIZE_THREAD__")
#undef __SANITIZE_THREAD__
#include_next <google/protobuf/map_field.h>
#pragma pop_macro("__SANITIZE_THREAD__")

#endif  // ESTUARY_THIRD_PARTY_TSAN_PROTOBUF_MAP_FIELD_H_
