// placeholder: implemented by the owner of proto/dc_table.h
#include "proto/dc_table.h"
