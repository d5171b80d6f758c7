// placeholder: implemented by the owner of proto/obfs2.h
#include "proto/obfs2.h"
