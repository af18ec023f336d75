// Errors that the native layers raise and the binding turns into JavaScript exceptions.
#pragma once

#include <stdexcept>
#include <string>

namespace supcon {

// A bad argument: becomes a JavaScript TypeError (wrong kind) or RangeError (bad value).
class ArgumentError : public std::invalid_argument {
 public:
  enum class Kind { Type, Range };
  ArgumentError(Kind kind, const std::string& message)
      : std::invalid_argument(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

inline ArgumentError typeError(const std::string& message) {
  return ArgumentError(ArgumentError::Kind::Type, message);
}
inline ArgumentError rangeError(const std::string& message) {
  return ArgumentError(ArgumentError::Kind::Range, message);
}

}  // namespace supcon
