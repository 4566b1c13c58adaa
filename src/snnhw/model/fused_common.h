/* Shared by the compiled kernels of snnhw.model.fused_cells (wavefront_cells.c,
 * sparse_products.c): headers, the OpenMP thread index and count, and multiversioning. */
#ifndef SNNHW_FUSED_COMMON_H
#define SNNHW_FUSED_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* THREAD / THREADS: this thread's index and the team's size inside an OpenMP parallel region
 * (0 and 1 in a build without OpenMP, where the regions run on the calling thread). */
#ifdef _OPENMP
#include <omp.h>
#define THREAD omp_get_thread_num()
#define THREADS omp_get_num_threads()
#else
#define THREAD 0
#define THREADS 1
#endif

/* One build, several instruction sets: the loader picks the widest the CPU has (GCC/Clang
 * function multiversioning; the operations, hence the values, are the same in every clone). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(SNNHW_NO_CLONES)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#endif
