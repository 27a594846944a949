// The physical limit the engine's throughput is compared with: single-row transactions per second
// in SQLite with the daemon's own settings (WAL, synchronous=NORMAL), on the same disk.
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: raw_sqlite_commit DIR [N]\n");
        return 2;
    }
    std::string path = std::string(argv[1]) + "/raw.db";
    int n = argc > 2 ? std::atoi(argv[2]) : 20000;
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 1;
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)",
                 nullptr, nullptr, nullptr);
    sqlite3_stmt* ins = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES ('0123456789abcdef0123456789abcdef')", -1, &ins, nullptr);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
        sqlite3_step(ins);
        sqlite3_reset(ins);
        sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sqlite3_finalize(ins);
    sqlite3_close(db);
    std::printf("%.0f\n", n / s);
    return 0;
}
