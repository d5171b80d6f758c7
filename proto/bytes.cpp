// placeholder: implemented by the owner of proto/bytes.h
#include "proto/bytes.h"
