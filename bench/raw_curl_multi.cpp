// What libcurl alone gives on this machine, the limit next to http.get's rate in bench/http_bench.py:
// K easy handles on one multi handle, each fetching URL again as soon as its transfer ends (keep-alive
// connections reused, the body thrown away), for S seconds, on one thread as the daemon's loop is.
// Prints requests per second and the process's CPU microseconds per request.
//
//   raw_curl_multi URL [K] [SECONDS]
#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sys/resource.h>
#include <vector>

namespace {

size_t discard(char*, size_t size, size_t n, void*) {
    return size * n;
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: raw_curl_multi URL [K] [SECONDS]\n");
        return 2;
    }
    const int k = argc > 2 ? std::atoi(argv[2]) : 50;
    const double seconds = argc > 3 ? std::atof(argv[3]) : 5;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* multi = curl_multi_init();
    std::vector<CURL*> easies;
    for (int i = 0; i < k; ++i) {
        CURL* e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, argv[1]);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_multi_add_handle(multi, e);
        easies.push_back(e);
    }
    long done = 0, bad = 0;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const auto until = t0 + std::chrono::duration<double>(seconds);
    int running = 0;
    while (std::chrono::steady_clock::now() < until) {
        curl_multi_perform(multi, &running);
        int left = 0;
        while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
            if (m->msg != CURLMSG_DONE) continue;
            long status = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (m->data.result == CURLE_OK && status == 200)
                ++done;
            else
                ++bad;
            curl_multi_remove_handle(multi, m->easy_handle);
            curl_multi_add_handle(multi, m->easy_handle);
        }
        curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;
    for (CURL* e : easies) {
        curl_multi_remove_handle(multi, e);
        curl_easy_cleanup(e);
    }
    curl_multi_cleanup(multi);
    if (bad > 0) std::fprintf(stderr, "raw_curl_multi: %ld transfers failed\n", bad);
    std::printf("%.0f %.1f\n", done / wall, done > 0 ? cpu / static_cast<double>(done) * 1e6 : 0.0);
    return done > 0 ? 0 : 1;
}
