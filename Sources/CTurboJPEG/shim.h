// libjpeg-turbo's TurboJPEG API (tjDecompressHeader3 / tjDecompress2 / tjCompress2).
// Debian: libturbojpeg0-dev puts turbojpeg.h on the default include path.
#include <turbojpeg.h>
