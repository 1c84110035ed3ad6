// Writes the tiny miniImageNet-style fixture in mini-imagenet/: 16 x 16 RGB JPEGs in images/,
// listed by train.csv (4 classes) and test.csv (3 classes) in Ravi & Larochelle's
// `filename,label` format. Each class is a colour and a stripe direction, each image a shade.
//   cc make_mini_imagenet.c -lturbojpeg -o /tmp/mk && (cd mini-imagenet && /tmp/mk)
#include <stdio.h>
#include <turbojpeg.h>

static const char *names[] = {"n01000001", "n01000002", "n01000003", "n01000004",
                              "n02000001", "n02000002", "n02000003"};
static const unsigned char colours[][3] = {{220, 40, 40}, {40, 200, 60}, {50, 60, 220}, {220, 200, 40},
                                           {200, 60, 200}, {40, 200, 200}, {140, 90, 40}};

int main(void) {
    tjhandle tj = tjInitCompress();
    FILE *train = fopen("train.csv", "w"), *test = fopen("test.csv", "w");
    fprintf(train, "filename,label\n");
    fprintf(test, "filename,label\n");
    for (int c = 0; c < 7; c++) {
        for (int i = 0; i < 5; i++) {
            unsigned char pixels[16 * 16 * 3];
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++) {
                    int stripe = ((c % 2 ? x : y) / 4) % 2;
                    for (int k = 0; k < 3; k++) {
                        int v = colours[c][k] * (stripe ? 1.0 : 0.5) + 6 * i;
                        pixels[(y * 16 + x) * 3 + k] = v > 255 ? 255 : v;
                    }
                }
            unsigned char *jpeg = NULL;
            unsigned long size = 0;
            tjCompress2(tj, pixels, 16, 0, 16, TJPF_RGB, &jpeg, &size, TJSAMP_420, 75, 0);
            char name[64];
            snprintf(name, sizeof name, "%s%08d.jpg", names[c], i + 1);
            char path[80];
            snprintf(path, sizeof path, "images/%s", name);
            FILE *f = fopen(path, "wb");
            fwrite(jpeg, 1, size, f);
            fclose(f);
            tjFree(jpeg);
            fprintf(c < 4 ? train : test, "%s,%s\n", name, names[c]);
        }
    }
    fclose(train);
    fclose(test);
    tjDestroy(tj);
    return 0;
}
