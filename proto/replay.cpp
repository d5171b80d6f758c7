// placeholder: implemented by the owner of proto/replay.h
#include "proto/replay.h"
