// OpenBLAS's CBLAS interface (Debian: libopenblas-dev puts cblas.h on the multiarch include path).
#include <cblas.h>
// Not declared in every cblas.h; provided by OpenBLAS itself.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
