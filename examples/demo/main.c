/* tinycc demo: one inference on an all-zero input, output bytes printed in hex. */
#include <stdio.h>

#include "demo_model.h"

/* The arena: static, aligned, of the size the header gives; nothing is allocated. */
static int8_t arena[DEMO_ARENA_SIZE > 0 ? DEMO_ARENA_SIZE : 1] __attribute__((aligned(DEMO_ARENA_ALIGN)));
static int8_t input[DEMO_INPUT_SIZE];
static int8_t output[DEMO_OUTPUT_SIZE];

int main(void)
{
    int i;
    const int rc = DEMO_RUN(input, output, arena);
    if (rc != 0) {
        fprintf(stderr, "run failed: %d\n", rc);
        return 1;
    }
    for (i = 0; i < DEMO_OUTPUT_SIZE; ++i) {
        printf("%02x", (unsigned)(uint8_t)output[i]);
    }
    printf("\n");
    return 0;
}
