/* parse_bench.c - jansson DOM parse vs the gwsieve tokenizer on the same
 * NDJSON events, alternately, three rounds (one process, one core).
 *   cc -O2 -Iinclude bench/parse_bench.c build/libgws_core.a -ljansson \
 *      -lpcre2-8 -lm -o /tmp/parse_bench && /tmp/parse_bench EVENTS.ndjson
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "gwsieve/json.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int argc,char**argv){ FILE*f=fopen(argv[1],"r"); char*line=NULL; size_t cap=0; ssize_t n; char**L=malloc(sizeof(char*)*300000); size_t*N=malloc(sizeof(size_t)*300000); int c=0; size_t bytes=0;
 while((n=getline(&line,&cap,f))>0 && c<300000){ L[c]=malloc(n); memcpy(L[c],line,n-1); N[c]=n-1; bytes+=n-1; c++; }
 for(int r=0;r<3;r++){ double t0=now(); for(int i=0;i<c;i++){ json_error_t e; json_t*j=json_loadb(L[i],N[i],0,&e); json_decref(j);} double t1=now();
  gws_jdoc_t d={0}; for(int i=0;i<c;i++) gws_json_parse(&d,L[i],N[i],NULL); double t2=now(); gws_json_free(&d);
  printf("round %d: jansson DOM %.0f ev/s (%.0f MB/s)   gws tokenizer %.0f ev/s (%.0f MB/s)  ratio %.1fx\n", r, c/(t1-t0), bytes/1e6/(t1-t0), c/(t2-t1), bytes/1e6/(t2-t1), (t1-t0)/(t2-t1)); }
}
