// placeholder: implemented by the owner of proto/aes_ctr.h
#include "proto/aes_ctr.h"
