# The operator image: `millrace controller` and the rest of the CLI. Steps run in their own
# images (one per language), so this image needs neither Python nor Bash.
#
#   docker build -t REGISTRY/millrace:TAG .

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Cargo reads every target the manifest declares, benches included.
COPY benches benches
COPY src src
RUN cargo build --release --locked --bin millrace \
 && install -D target/release/millrace /out/millrace

# glibc and libgcc, no shell; the :nonroot variant runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/millrace /usr/local/bin/millrace
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/millrace"]
CMD ["controller"]
