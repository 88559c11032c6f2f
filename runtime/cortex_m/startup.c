/*
 * Bare-metal start-up code for the tinycc harness on Cortex-M (ARMv6-M,
 * ARMv7-M, ARMv8-M Mainline), run on QEMU's MPS2 boards.
 *
 * - vector table in .isr_vector, placed at the flash origin by link.ld.in;
 * - reset: enable the FPU (when compiled for one), copy .data, clear .bss,
 *   open the semihosting handles (newlib's rdimon), call main(), exit();
 * - faults print a message through semihosting and stop the emulator with a
 *   non-zero status, so that a crash never looks like a hang;
 * - SysTick counts 24-bit wraps to give a 64-bit tick counter.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness_port.h"

extern int main(void);
extern void initialise_monitor_handles(void);

/* From the linker script. */
extern uint32_t __data_start__[], __data_end__[], __data_load__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __stack_top__[];

/* newlib's __libc_init_array references these; nothing to do here. */
void _init(void) {}
void _fini(void) {}

#define REG32(addr) (*(volatile uint32_t *)(addr))
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SCB_CPACR REG32(0xE000ED88u)

/* ---- semihosting, used directly where the C library cannot be trusted ---- */

#define SEMIHOSTING_SYS_WRITE0 0x04
#define SEMIHOSTING_SYS_EXIT 0x18
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void fatal_exit(void) __attribute__((noreturn));
static void fatal_exit(void)
{
    /* AArch32 SYS_EXIT takes the reason itself; anything but
     * ADP_Stopped_ApplicationExit makes QEMU exit with status 1. */
    semihost(SEMIHOSTING_SYS_EXIT, (const void *)ADP_STOPPED_RUNTIME_ERROR_UNKNOWN);
    for (;;) {
    }
}

static void put_hex(const char *label, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[12];
    int i;
    buf[0] = '0';
    buf[1] = 'x';
    for (i = 0; i < 8; i++) {
        buf[2 + i] = digits[(v >> (28 - 4 * i)) & 15u];
    }
    buf[10] = '\0';
    semihost(SEMIHOSTING_SYS_WRITE0, label);
    semihost(SEMIHOSTING_SYS_WRITE0, buf);
}

/* frame: the exception stack frame (r0-r3, r12, lr, pc, xPSR), or NULL. */
static void fatal(const char *msg, const uint32_t *frame) __attribute__((noreturn, used));
static void fatal(const char *msg, const uint32_t *frame)
{
    semihost(SEMIHOSTING_SYS_WRITE0, "\nfatal: ");
    semihost(SEMIHOSTING_SYS_WRITE0, msg);
    if (frame != NULL) {
        put_hex(" at pc=", frame[6]);
        put_hex(" lr=", frame[5]);
#if __ARM_ARCH >= 7
        put_hex(" cfsr=", REG32(0xE000ED28u));
        put_hex(" hfsr=", REG32(0xE000ED2Cu));
        put_hex(" bfar=", REG32(0xE000ED38u));
#endif
    }
    semihost(SEMIHOSTING_SYS_WRITE0, "\n");
    fatal_exit();
}

/* ---- exception handlers ---- */

/* Fault handlers pass the stacked frame (on MSP: nothing here uses PSP). */
#define FAULT_HANDLER(name, text)                                                \
    static void name##_report(const uint32_t *frame) __attribute__((used, noreturn)); \
    static void name##_report(const uint32_t *frame) { fatal(text, frame); }      \
    void name(void) __attribute__((naked));                                      \
    void name(void)                                                              \
    {                                                                            \
        __asm__ volatile("mrs r0, msp\n\t"                                       \
                         "ldr r1, =" #name "_report\n\t"                         \
                         "bx r1\n\t"                                             \
                         ".ltorg");                                              \
    }

void Reset_Handler(void) __attribute__((noreturn));
FAULT_HANDLER(HardFault_Handler, "HardFault (bad memory access, unaligned access or undefined instruction)")
FAULT_HANDLER(MemManage_Handler, "MemManage fault")
FAULT_HANDLER(BusFault_Handler, "BusFault (bad memory access)")
FAULT_HANDLER(UsageFault_Handler, "UsageFault (undefined instruction, unaligned access or division by zero)")
FAULT_HANDLER(SecureFault_Handler, "SecureFault")
void NMI_Handler(void) { fatal("NMI", NULL); }
void Unexpected_Handler(void) { fatal("unexpected interrupt", NULL); }

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps++; }

typedef void (*vector_t)(void);

/* 16 system exceptions, then a few external interrupts (none are enabled). */
__attribute__((section(".isr_vector"), used)) const vector_t harness_vectors[16 + 16] = {
    (vector_t)__stack_top__,            /* 0: initial SP  */
    Reset_Handler,                      /* 1: reset       */
    NMI_Handler,                        /* 2              */
    HardFault_Handler,                  /* 3              */
    MemManage_Handler,                  /* 4              */
    BusFault_Handler,                   /* 5              */
    UsageFault_Handler,                 /* 6              */
    SecureFault_Handler,                /* 7 (ARMv8-M)    */
    0,
    0,
    0,
    Unexpected_Handler, /* 11: SVCall     */
    Unexpected_Handler, /* 12: DebugMon   */
    0,
    Unexpected_Handler, /* 14: PendSV     */
    SysTick_Handler,    /* 15: SysTick    */
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
};

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* Full access to CP10 and CP11 (the FPU). */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    {
        uint32_t *src = __data_load__;
        uint32_t *dst = __data_start__;
        while (dst < __data_end__) {
            *dst++ = *src++;
        }
    }
    {
        uint32_t *dst = __bss_start__;
        while (dst < __bss_end__) {
            *dst++ = 0;
        }
    }
    initialise_monitor_handles();
    exit(main());
}

/* ---- tick counter ---- */

/* SysTick's 24-bit reload value; the tests lower it to exercise the wraps. */
#ifndef HARNESS_SYSTICK_RELOAD
#define HARNESS_SYSTICK_RELOAD 0xFFFFFFu
#endif

void port_counter_init(void)
{
    SYST_CSR = 0;
    systick_wraps = 0;
    SYST_RVR = HARNESS_SYSTICK_RELOAD;
    SYST_CVR = 0; /* any write clears the count; it reloads from RVR */
    SYST_CSR = 7; /* ENABLE | TICKINT | CLKSOURCE = processor clock */
    /* The counter reads 0 until its first reload from RVR (one tick later,
     * without an interrupt): wait for it so that the count is monotonic. */
    while (SYST_CVR == 0) {
    }
}

uint64_t port_ticks(void)
{
    uint32_t w1, w2, v;
    do {
        w1 = systick_wraps;
        v = SYST_CVR;
        w2 = systick_wraps;
    } while (w1 != w2);
    return (uint64_t)w1 * (HARNESS_SYSTICK_RELOAD + 1u) + (HARNESS_SYSTICK_RELOAD - v);
}

/* ---- stack ---- */

extern void *_sbrk(ptrdiff_t incr);

uintptr_t port_stack_limit(void)
{
    /* Leave room for the C library to grow the heap a little later. */
    return (uintptr_t)_sbrk(0) + 4096u;
}

uintptr_t port_stack_pointer(void)
{
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}
