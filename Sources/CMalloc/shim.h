// The module exists for its link directive (mimalloc, see module.modulemap); the header
// declares the allocator interface it replaces.
#include <malloc.h>
