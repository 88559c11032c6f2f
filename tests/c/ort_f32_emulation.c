/* tinycc_nn.h's onnxruntime arithmetic (requantize, QuantizeLinear, DequantizeLinear) against
 * the host FPU: (float)acc * scale and x / scale rounded half to even, (float)v * scale, on
 * random accumulators, floats and scales; every result must be identical. */
#include <stdio.h>
#include <string.h>
#include <math.h>
#include "tinycc_nn.h"
static uint32_t bits(float f){uint32_t u; memcpy(&u,&f,4); return u;}
static float fl(uint32_t u){float f; memcpy(&f,&u,4); return f;}
static int32_t clampi(float v, int32_t zp){ /* onnxruntime: clamp in float, round to even, add zp */
 float lo=(float)(-128-zp), hi=(float)(127-zp); v = v < lo ? lo : (v > hi ? hi : v); return (int32_t)nearbyintf(v) + zp; }
int main(void){ unsigned long long s=88172645463325252ULL; long bad=0, n=0;
 for(long i=0;i<3000000;i++){ s^=s<<13; s^=s>>7; s^=s<<17;
  uint32_t scale = (uint32_t)(s>>40) & 0x7FFFFFu; int32_t zp = (int32_t)((s>>8)&0xFF) - 128;
  int32_t acc; uint32_t x;
  scale |= (uint32_t)(100 + (s>>20)%40) << 23;             /* 2^-27 .. 2^12 */
  acc = (int32_t)(uint32_t)s; if(i%3==0) acc >>= (int)((s>>5)%31);
  if(i%7==0) acc = (int32_t)(((s>>9)%4096) - 2048) * (int32_t)(1 << ((s>>33)%12));
  n++;
  { int32_t want = clampi(fl(bits((float)acc) ) * fl(scale), zp);
    int32_t v = tinycc_requant_out(acc, (int32_t)scale, 0, -1, zp, -128, 127);
    if (v != want) { if(bad<5) printf("requant %d %08x %d -> %d vs %d\n",acc,scale,zp,v,want); bad++; } }
  x = (uint32_t)(s>>32); if(((x>>23)&0xFF)==0xFF) x ^= 0x40000000u;
  if(i%2) x = (x & 0x807FFFFFu) | ((uint32_t)(110 + (s>>3)%30) << 23);
  { int32_t want = clampi(fl(x) / fl(scale), zp); int32_t v = tinycc_quantize_f32(x, scale, zp);
    if (v != want) { if(bad<5) printf("quantize %08x %08x %d -> %d vs %d\n",x,scale,zp,v,want); bad++; } }
  { int32_t q = (int32_t)((s>>13)&0x1FF) - 256; float p = (float)q * fl(scale);
    uint32_t want = (bits(p) & 0x7F800000u) == 0 ? 0u : bits(p); uint32_t v = tinycc_dequantize_f32(q, scale);
    if (q == 0) want = 0u;
    if (v != want) { if(bad<5) printf("dequantize %d %08x -> %08x vs %08x\n",q,scale,v,want); bad++; } }
 }
 /* QLinearAdd: fma(a, ra, fma(b, rb, fixed)), rounded to even, saturated */
 for(long i=0;i<2000000;i++){ s^=s<<13; s^=s>>7; s^=s<<17;
  int32_t a=(int32_t)(s&0xFF)-128, b=(int32_t)((s>>8)&0xFF)-128;
  uint32_t ra=((uint32_t)(s>>16)&0x7FFFFFu)|((uint32_t)(118+(s>>40)%14)<<23), rb=((uint32_t)(s>>20)&0x7FFFFFu)|((uint32_t)(118+(s>>44)%14)<<23);
  uint32_t fx=((uint32_t)(s>>28)&0x7FFFFFu)|((uint32_t)(100+(s>>50)%34)<<23)|((uint32_t)((s>>60)&1)<<31);
  float v=fmaf((float)a,fl(ra),fmaf((float)b,fl(rb),fl(fx))); int32_t w=clampi(v,0);
  int32_t fm=(int32_t)((fx&0x7FFFFFu)|0x800000u), fe=(int32_t)((fx>>23)&0xFF)-150; if(fx>>31) fm=-fm;
  uint32_t t=bits(fmaf((float)b,fl(rb),fl(fx))); int32_t tm=(int32_t)((t&0x7FFFFFu)|0x800000u), te=(int32_t)((t>>23)&0xFF)-150;
  int32_t got; (void)fm; (void)fe; if(t>>31) tm=-tm; if((t&0x7F800000u)==0u){ tm=0; te=0; }
  got=tinycc_qlinear_add(a,tm,te,(int32_t)((ra&0x7FFFFFu)|0x800000u),(int32_t)(ra>>23)-150,0);
  n++; if(got!=w){ if(bad<5) printf("qladd %d %d %08x %08x %08x -> %d vs %d\n",a,b,ra,rb,fx,got,w); bad++; } }
 /* QLinearAveragePool: float32 sum of a window, / count, / y_scale, + zp, rounded to even */
 { static uint32_t table[256]; static int8_t img[5*7*3];
  for(long i=0;i<20000;i++){ s^=s<<13; s^=s>>7; s^=s<<17;
   float xs=fl(((uint32_t)(s>>9)&0x7FFFFFu)|((uint32_t)(115+(s>>40)%10)<<23)), ys=fl(((uint32_t)(s>>17)&0x7FFFFFu)|((uint32_t)(115+(s>>44)%10)<<23));
   int32_t xz=(int32_t)((s>>3)&0xFF)-128, yz=(int32_t)((s>>50)&0xFF)-128, k, iy0=(int32_t)((s>>30)%7)-2, ix0=(int32_t)((s>>33)%9)-2, fh=1+(int32_t)((s>>36)%3), fw=1+(int32_t)((s>>38)%3);
   for(k=0;k<256;k++) table[k]=bits(xs*(float)(k-128-xz));
   for(k=0;k<5*7*3;k++){ s^=s<<13; s^=s>>7; s^=s<<17; img[k]=(int8_t)(s&0xFF); }
   { int32_t c=(int32_t)(i%3), y, x, cnt=0; float acc=0.0f, v; int32_t want;
     for(y=iy0;y<iy0+fh;y++) for(x=ix0;x<ix0+fw;x++) if(y>=0&&y<5&&x>=0&&x<7){ acc+=fl(table[img[(y*7+x)*3+c]+128]); cnt++; }
     if(cnt==0) continue;
     acc/=(float)cnt; v=nearbyintf(acc/ys+(float)yz); want=v<-128.0f?-128:(v>127.0f?127:(int32_t)v);
     n++; if(tinycc_qlinear_average(img+c,5,7,3,iy0,ix0,fh,fw,table,bits(ys),yz,0)!=want){ if(bad<5) printf("avg %ld\n",i); bad++; } } } }
 /* ties: values exactly halfway between integers */
 { int32_t k; for(k=-300;k<=300;k++){ float x=(float)k+0.5f; int32_t w=clampi(x,0); if(tinycc_quantize_f32(bits(x),bits(1.0f),0)!=w){bad++; printf("tie %d\n",k);} n++; } }
 printf("checked %ld, bad %ld\n", n, bad); return bad!=0; }
