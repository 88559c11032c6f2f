/* tinycc_nn.h float32 emulation (add, reciprocal, multiply, round) against the host FPU on
 * random bit patterns, subnormals included: every result must be identical. */
#include <stdio.h>
#include <string.h>
#include <math.h>
#include "tinycc_nn.h"
static uint32_t bits(float f){uint32_t u; memcpy(&u,&f,4); return u;}
static float fl(uint32_t u){float f; memcpy(&f,&u,4); return f;}
int main(void){ unsigned long long s=88172645463325252ULL; long bad=0, n=0;
 for(long i=0;i<3000000;i++){ s^=s<<13; s^=s>>7; s^=s<<17;
  uint32_t a=(uint32_t)s & 0x7FFFFFFF, b=(uint32_t)(s>>32) & 0x7FFFFFFF;
  int mode=i%4; if(mode==1){ a &= 0x3FFFFFFF; b = (a & 0x7F800000) | (b & 0x7FFFFF); b -= (uint32_t)(i%30)<<23 & 0x7F800000 ? 0 : 0; }
  if(mode==2){ a &= 0x807FFFFF; a &= 0x7FFFFFFF; } /* subnormal a */
  if(mode==3){ b = (b & 0x7FFFFF) | ((uint32_t)(100 + i%40) << 23); a = (a & 0x7FFFFF) | ((uint32_t)(100 + (i/7)%40) << 23);}
  if((a>>23)==255||(b>>23)==255) continue;
  if ((a>>23) >= 200 || (b>>23) >= 200) continue;
  n++;
  if(tinycc_f32_add(a,b)!=bits(fl(a)+fl(b))) { if(bad<5) printf("add %08x %08x -> %08x vs %08x\n",a,b,tinycc_f32_add(a,b),bits(fl(a)+fl(b))); bad++; }
  if((b>>23)!=0 && (a>>23)!=0 && (int)(a>>23)+(int)(b>>23)-127 < 250){ float pr=fl(a)*fl(b); uint32_t want = (bits(pr)>>23)==0 ? 0 : bits(pr); if(tinycc_f32_mul(a,b)!=want){ if(bad<5) printf("mul %08x %08x\n",a,b); bad++;} }
  if((b>>23)>=2 && (b>>23)<=250){ if(tinycc_f32_recip(b)!=bits(1.0f/fl(b))){ if(bad<5) printf("recip %08x -> %08x vs %08x\n",b,tinycc_f32_recip(b),bits(1.0f/fl(b))); bad++;} }
  if(fl(a) < 1e9f){ int32_t r=tinycc_f32_round(a); int32_t w=(int32_t)roundf(fl(a)); if(r!=w){ if(bad<5) printf("round %08x %d %d\n",a,r,w); bad++;} }
 }
 printf("checked %ld, bad %ld\n", n, bad); return bad!=0; }
