// placeholder: implemented by the owner of proto/fake_tls.h
#include "proto/fake_tls.h"
