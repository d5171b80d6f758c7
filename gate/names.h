// Private to gate/: the process contract's vocabulary (ipc/) by the short
// names its code uses (the one list is conn/names.h).
#pragma once

#include "conn/names.h"

namespace mtw::gate {
using namespace conn::vocabulary;
}  // namespace mtw::gate
