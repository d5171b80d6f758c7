/* alloc_helper N: allocates N bytes and touches every page.
 * Exit 0 on success, 1 when the allocation fails, 2 on bad usage. */
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  size_t n = strtoull(argv[1], NULL, 10);
  char* p = malloc(n);
  if (p == NULL) return 1;
  memset(p, 'a', n);
  return p[n / 2] == 'a' ? 0 : 3;
}
