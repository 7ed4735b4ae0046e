// edgeavs: the one helper of src/support/utils.h the CPU runtime sources use (thread_pool.cc).
#ifndef EDGEAVS_TVM_SUPPORT_UTILS_H_
#define EDGEAVS_TVM_SUPPORT_UTILS_H_

#include <cctype>
#include <string>

namespace tvm {
namespace support {

/*! \brief Whether ``s`` is a non-empty string of decimal digits. */
inline bool IsNumber(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!std::isdigit(c)) return false;
  return true;
}

}  // namespace support
}  // namespace tvm

#endif  // EDGEAVS_TVM_SUPPORT_UTILS_H_
