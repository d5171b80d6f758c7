// placeholder: implemented by the owner of proto/framing.h
#include "proto/framing.h"
