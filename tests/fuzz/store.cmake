# The S3 client's pure cores (server/store/): SigV4's canonical request from hostile paths,
# queries and headers, and the S3 XML bodies (listing, error, multipart).
rn_add_fuzz_target(fuzz_sigv4 SOURCES fuzz_sigv4.c LIBS rn_store_core CORPUS ${C}/sigv4)
rn_add_fuzz_target(fuzz_s3xml SOURCES fuzz_s3xml.c LIBS rn_store_core CORPUS ${C}/s3xml)
