// A small command-line flag parser: one FlagSet per binary or subcommand.
//
// Written here rather than using absl flags because those are process-wide
// globals (every subcommand of `estuary` would share them) and exit with
// code 1 on a bad flag, while Estuary's contract is exit code 2 with a
// one-line error. Accepts --name=value, --name value, --bool / --nobool,
// --help / -h, and "--" to end flags. Not thread-safe; use from main.
#ifndef ESTUARY_COMMON_FLAGS_H_
#define ESTUARY_COMMON_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace estuary {

class FlagSet {
 public:
  // `usage` is the synopsis ("worker [flags]"), `description` a paragraph.
  FlagSet(std::string usage, std::string description);

  // Registers flags; `target` holds the default and receives the value.
  void String(std::string name, std::string* target, std::string help);
  void Int(std::string name, int* target, std::string help);
  void Double(std::string name, double* target, std::string help);
  void Bool(std::string name, bool* target, std::string help);

  // Parses argv[first..argc). InvalidArgument for unknown flags, missing or
  // malformed values (with a hint for near-miss names).
  absl::Status Parse(int argc, char** argv, int first = 1);

  bool help_requested() const { return help_requested_; }
  const std::vector<std::string>& positional() const { return positional_; }
  std::string Usage() const;

 private:
  enum class Type { kString, kInt, kDouble, kBool };
  struct Flag {
    std::string name;
    Type type;
    void* target;
    std::string help;
    std::string default_text;
  };
  absl::Status Set(const Flag& flag, absl::string_view value);

  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_FLAGS_H_
