#include "common/compat.h"

int main(void)
{
    return 0;
}
