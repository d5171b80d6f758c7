// placeholder: implemented by the owner of proto/random.h
#include "proto/random.h"
