/* Open MPI peer of bench/allreduce_bench.cc: MPI_Allreduce (MPI_FLOAT,
 * MPI_SUM) between N processes, over TCP on loopback:
 *
 *   mpicc -O2 -o allreduce_bench_mpi bench/allreduce_bench_mpi.c
 *   mpirun -np 2 --bind-to none --mca pml ob1 --mca btl tcp,self \
 *          --mca btl_tcp_if_include lo ./allreduce_bench_mpi [SIZES ITERS WARMUP]
 *
 * (bench/allreduce_bench.py builds and runs it so.) SIZES and ITERS are
 * comma-separated lists like the other sides' --sizes / --iters; WARMUP -1
 * means iters/10, at least 2. Same schedule as the Estuary side: per size
 * one all-reduce of (i % 13) + rank checked against the expected sum, then
 * warm-up calls and timed calls on zeros, each timed on its own. Rank 0
 * prints time_us_<bytes> (median), algbw_gbps_<bytes>, busbw_gbps_<bytes>
 * (nccl-tests' definitions), cpu_us_<bytes> (user + system CPU time of all
 * ranks together per timed call) and checked_sizes.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_SIZES 32

static int parse_list(const char* text, long long* out) {
  int n = 0;
  char* copy = strdup(text);
  for (char* tok = strtok(copy, ","); tok && n < MAX_SIZES; tok = strtok(NULL, ",")) {
    out[n++] = atoll(tok);
  }
  free(copy);
  return n;
}

/* User + system CPU seconds of this process (every thread) so far. */
static double cpu_secs(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

static int compare_doubles(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  long long sizes[MAX_SIZES], iters[MAX_SIZES];
  const int n_sizes =
      parse_list(argc > 1 ? argv[1] : "4096,65536,1048576,16777216,67108864", sizes);
  const int n_iters = parse_list(argc > 2 ? argv[2] : "2000,1000,200,30,10", iters);
  const int warmup = argc > 3 ? atoi(argv[3]) : -1;
  if (n_sizes != n_iters) {
    if (rank == 0) fprintf(stderr, "allreduce_bench_mpi: %d sizes, %d iters\n", n_sizes, n_iters);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  double medians[MAX_SIZES], cpu_us[MAX_SIZES];
  for (int k = 0; k < n_sizes; ++k) {
    const long long floats = sizes[k] / 4;
    float* data = malloc(floats * sizeof(float));
    float* result = malloc(floats * sizeof(float));
    for (long long i = 0; i < floats; ++i) data[i] = (float)(i % 13 + rank);
    MPI_Allreduce(data, result, (int)floats, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (long long i = 0; i < floats; ++i) {
      const float want = (float)(world * (i % 13) + world * (world - 1) / 2);
      if (result[i] != want) {
        fprintf(stderr, "allreduce_bench_mpi: rank %d: element %lld of %lld bytes is %g, want %g\n",
                rank, i, sizes[k], result[i], want);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
    memset(data, 0, floats * sizeof(float));
    const long long n_warm = warmup >= 0 ? warmup : (iters[k] / 10 > 2 ? iters[k] / 10 : 2);
    double* times = malloc(iters[k] * sizeof(double));
    double cpu0 = 0;
    for (long long i = 0; i < n_warm + iters[k]; ++i) {
      if (i == n_warm) cpu0 = cpu_secs();
      /* In place, as the other sides reduce one buffer in place. */
      const double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, data, (int)floats, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      const double t1 = MPI_Wtime();
      if (i >= n_warm) times[i - n_warm] = t1 - t0;
    }
    const double cpu = cpu_secs() - cpu0;
    double cpu_all = 0;
    MPI_Reduce(&cpu, &cpu_all, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    cpu_us[k] = cpu_all * 1e6 / iters[k];
    qsort(times, iters[k], sizeof(double), compare_doubles);
    medians[k] = times[iters[k] / 2];
    free(times);
    free(result);
    free(data);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    const double bus = 2.0 * (world - 1) / world;
    for (int k = 0; k < n_sizes; ++k) {
      const double algbw = sizes[k] / medians[k] / 1e9;
      printf("time_us_%lld %.2f\n", sizes[k], medians[k] * 1e6);
      printf("algbw_gbps_%lld %.3f\n", sizes[k], algbw);
      printf("busbw_gbps_%lld %.3f\n", sizes[k], algbw * bus);
      printf("cpu_us_%lld %.2f\n", sizes[k], cpu_us[k]);
    }
    printf("checked_sizes %d\n", n_sizes);
  }
  MPI_Finalize();
  return 0;
}
