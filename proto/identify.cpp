// placeholder: implemented by the owner of proto/identify.h
#include "proto/identify.h"
