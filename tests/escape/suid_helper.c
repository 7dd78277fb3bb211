/*
 * suid_helper: installed setuid root (owner 0, mode 4755) in the escape-battery image.
 * It only prints the effective uid it runs with, so the probe can see whether running a
 * setuid-root binary as an ordinary user gave it root (no-new-privileges says it must not).
 */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("euid=%d\n", (int)geteuid());
    return 0;
}
