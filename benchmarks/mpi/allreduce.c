/* MPI_Allreduce (float sum, in place) timed for the meta-gradient sizes of the scaling model
 * (docs/SCALING.md): every rank sums COUNT floats REPEAT times after WARMUP untimed calls;
 * rank 0 prints the median and mean time per call.
 *   mpicc -O2 -o out/allreduce benchmarks/mpi/allreduce.c
 *   mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 out/allreduce 1761 113221 ...
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int warmup = 20, repeat = 200;
    for (int a = 1; a < argc; a++) {
        long count = atol(argv[a]);
        float *buffer = malloc(sizeof(float) * (size_t)count);
        double *times = malloc(sizeof(double) * repeat);
        for (long i = 0; i < count; i++) buffer[i] = (float)(i % 7) * 1e-3f;
        for (int r = 0; r < warmup + repeat; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double start = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t = MPI_Wtime() - start;
            if (r >= warmup) times[r - warmup] = t;
        }
        double sum = 0;
        for (int r = 0; r < repeat; r++) sum += times[r];
        qsort(times, repeat, sizeof(double), compare);
        if (rank == 0)
            printf("allreduce %d ranks, %ld floats (%ld bytes): median %.1f us, mean %.1f us\n", size, count,
                   count * 4, 1e6 * times[repeat / 2], 1e6 * sum / repeat);
        free(buffer);
        free(times);
    }
    MPI_Finalize();
    return 0;
}
