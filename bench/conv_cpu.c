/* bench/conv_cpu.c — lumen's conv2d on ResNet-18's 3x3 shapes at batch 32, forward and backward (d/dx and
 * d/dw), as a share of cblas_sgemm at 2048, one thread, in CPU time (getrusage): a figure that holds on a
 * shared, loaded machine, where wall-clock GFLOP/s do not. Build against a lumen build and run:
 *   cc -O2 -Isrc -Ibuild bench/conv_cpu.c build/liblumen_core.a \
 *      $(pkg-config --libs openblas libpng zlib libprotobuf-c libjpeg nettle) -ldnnl -lgomp -lm -o conv_cpu
 *   ./conv_cpu [onednn|im2col]        (drop -ldnnl -lgomp for a build without oneDNN) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include "lumen.h"
static double cpu(void){struct rusage r; getrusage(RUSAGE_SELF,&r); return r.ru_utime.tv_sec+r.ru_utime.tv_usec*1e-6+r.ru_stime.tv_sec+r.ru_stime.tv_usec*1e-6;}
int main(int argc,char**argv){
  const char *be = argc>1?argv[1]:"onednn"; lm_error err={0};
  lm_set_threads(1); if (lm_conv_set_backend(be,&err)) {puts(err.msg); return 1;}
  int n=2048; float *A=malloc(4L*n*n),*B=malloc(4L*n*n),*C=malloc(4L*n*n);
  for(long i=0;i<(long)n*n;i++){A[i]=(i%7)*0.1f;B[i]=(i%5)*0.1f;}
  double best=1e9; for(int r=0;r<4;r++){double t=cpu(); cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,n,n,n,1,A,n,B,n,0,C,n); t=cpu()-t; if(t<best)best=t;}
  double sg=2.0*n*n*n/best/1e9; printf("sgemm 2048 (%s): %.1f GFLOP/s\n", lm_blas_corename(), sg);
  int cs[][4]={{64,64,56,1},{64,128,56,2},{128,128,28,1},{256,256,14,1},{512,512,7,1}};
  for(int i=0;i<5;i++){int C_=cs[i][0],O=cs[i][1],HW=cs[i][2],s=cs[i][3];
    int64_t xs[4]={32,C_,HW,HW},ws[4]={O,C_,3,3}; lm_tensor*x=lm_tensor_new(LM_F32,4,xs,NULL),*w=lm_tensor_new(LM_F32,4,ws,NULL);
    for(int64_t j=0;j<x->numel;j++) lm_f32(x)[j]=(j%13)*0.01f; for(int64_t j=0;j<w->numel;j++) lm_f32(w)[j]=(j%11)*0.01f;
    lm_conv_params p=lm_conv_params_default(); p.stride[0]=p.stride[1]=s; for(int k=0;k<4;k++)p.pad[k]=1;
    int OH=(HW+2-3)/s+1; double flop=2.0*32*O*C_*9*OH*OH; double bf=1e9,bb=1e9;
    for(int r=0;r<3;r++){double t=cpu(); lm_tensor*y=lm_conv2d_forward(x,w,NULL,&p,&err); t=cpu()-t; if(t<bf)bf=t;
      lm_tensor*gx=lm_tensor_empty(LM_F32,4,x->shape,NULL),*gw=lm_tensor_empty(LM_F32,4,w->shape,NULL);
      t=cpu(); lm_conv2d_backward_ex(x,w,y,&p,gx,gw,NULL,LM_GRAD_OVERWRITE,&err); t=cpu()-t; if(t<bb)bb=t;
      lm_tensor_release(y);lm_tensor_release(gx);lm_tensor_release(gw);}
    printf("3x3%s %d->%d @%d N=32 (%s): fwd %.0f GFLOP/s = %.0f %% of sgemm; bwd (x and w) %.0f GFLOP/s = %.0f %%\n", s==2?"/2":"",C_,O,HW,be,flop/bf/1e9,100*flop/bf/1e9/sg,2*flop/bb/1e9,100*2*flop/bb/1e9/sg);
    lm_tensor_release(x);lm_tensor_release(w);}
  return 0;}
