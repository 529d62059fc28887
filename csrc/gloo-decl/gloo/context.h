// Declarations for torch's ProcessGroupGloo.hpp only: see README.md.
#pragma once
#include <chrono>
namespace gloo {
class Context {
 public:
  // Named by ProcessGroupGloo::setTimeout (inline in the header; that virtual function is
  // libtorch's own copy, so this declaration is never called from here).
  void setTimeout(std::chrono::milliseconds timeout);
};
} // namespace gloo
