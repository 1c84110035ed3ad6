// libpng's simplified read API (png_image_begin_read_from_memory / png_image_finish_read).
// Debian: libpng-dev puts png.h (libpng 1.6) on the default include path.
#include <png.h>
