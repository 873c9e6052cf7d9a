#include "common/flags.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/did_you_mean.h"

namespace estuary {

FlagSet::FlagSet(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void FlagSet::String(std::string name, std::string* target, std::string help) {
  flags_.push_back({std::move(name), Type::kString, target, std::move(help),
                    target->empty() ? "" : absl::StrCat("\"", *target, "\"")});
}

void FlagSet::Int(std::string name, int* target, std::string help) {
  flags_.push_back({std::move(name), Type::kInt, target, std::move(help),
                    absl::StrCat(*target)});
}

void FlagSet::Double(std::string name, double* target, std::string help) {
  flags_.push_back({std::move(name), Type::kDouble, target, std::move(help),
                    absl::StrCat(*target)});
}

void FlagSet::Bool(std::string name, bool* target, std::string help) {
  flags_.push_back({std::move(name), Type::kBool, target, std::move(help),
                    *target ? "true" : "false"});
}

absl::Status FlagSet::Set(const Flag& flag, absl::string_view value) {
  bool ok = true;
  switch (flag.type) {
    case Type::kString:
      *static_cast<std::string*>(flag.target) = std::string(value);
      break;
    case Type::kInt:
      ok = absl::SimpleAtoi(value, static_cast<int*>(flag.target));
      break;
    case Type::kDouble:
      ok = absl::SimpleAtod(value, static_cast<double*>(flag.target));
      break;
    case Type::kBool:
      ok = absl::SimpleAtob(value, static_cast<bool*>(flag.target));
      break;
  }
  if (!ok) {
    static const char* kWhat[] = {"a string", "an integer", "a number", "true or false"};
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag.name, "=", value, ": expected ", kWhat[static_cast<int>(flag.type)]));
  }
  return absl::OkStatus();
}

absl::Status FlagSet::Parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional_.emplace_back(argv[i]);
      break;
    }
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      help_requested_ = true;
      continue;
    }
    if (!absl::StartsWith(arg, "-") || arg == "-") {
      positional_.emplace_back(arg);
      continue;
    }
    arg.remove_prefix(absl::StartsWith(arg, "--") ? 2 : 1);
    absl::string_view name = arg, value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    const Flag* flag = nullptr;
    bool negated = false;
    for (const Flag& f : flags_) {
      if (f.name == name) flag = &f;
      if (f.type == Type::kBool && absl::StrCat("no", f.name) == name) {
        flag = &f;
        negated = true;
      }
    }
    if (flag == nullptr) {
      std::vector<std::string> names;
      for (const Flag& f : flags_) names.push_back(f.name);
      names.push_back("help");
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, DidYouMean(name, names)));
    }
    if (flag->type == Type::kBool && !has_value) {
      *static_cast<bool*>(flag->target) = !negated;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
      value = argv[++i];
    }
    absl::Status st = Set(*flag, value);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("Usage: ", usage_, "\n\n", description_, "\n\nFlags:\n");
  for (const Flag& f : flags_) {
    absl::StrAppend(&out, "  --", f.name, "\n      ", f.help);
    if (!f.default_text.empty()) absl::StrAppend(&out, " (default: ", f.default_text, ")");
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help\n      Print this help and exit.\n");
  return out;
}

}  // namespace estuary
