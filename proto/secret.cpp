// placeholder: implemented by the owner of proto/secret.h
#include "proto/secret.h"
