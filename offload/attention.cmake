# CPU attention over a host-memory KV cache (issue 5, "KV cache on CPU"): KV storages and
# kv_store, the owning HostKvCache, the attention kernel (driver + AVX2 and scalar inner
# loops, chosen at run time) and the host read-bandwidth probe `zinc attnbench` compares
# against. Included from offload/CMakeLists.txt after zinc_offload is defined.
target_sources(zinc_offload PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/kv_storage.cpp
    ${CMAKE_CURRENT_LIST_DIR}/host_kv_cache.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cpu_attention.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cpu_attention_avx2.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cpu_attention_avx2_blocked.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cpu_attention_scalar.cpp
    ${CMAKE_CURRENT_LIST_DIR}/host_bandwidth.cpp)
target_link_libraries(zinc_offload PUBLIC zinc_quant PRIVATE OpenMP::OpenMP_CXX)
