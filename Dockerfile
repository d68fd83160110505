# syntax=docker/dockerfile:1
# The Connectors image for people who build with Docker or buildah:
#   docker build -t ghcr.io/connectors-io/connectors:dev .
# It makes the layout of `make image` (hack/image), which CI here builds
# without a Docker daemon: the static binary at /usr/local/bin/connectors
# as the entrypoint, the CA bundle, the user nonroot (65532), no shell.
# This file is not built in this project's CI: its machines reach no
# container registry, so the base images below cannot be pulled there.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-X github.com/connectors-io/connectors/internal/version.version=${VERSION}" \
      -o /out/connectors ./cmd/connectors \
 && mkdir -p /out/etc /out/tmp /out/home/nonroot \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/out/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' >/out/etc/group \
 && printf 'hosts: files dns\n' >/out/etc/nsswitch.conf

FROM scratch
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="connectors" \
      org.opencontainers.image.description="Connectors: the gateway, controller, control API and CSI driver (one binary, one subcommand each)" \
      org.opencontainers.image.source="https://github.com/connectors-io/connectors" \
      org.opencontainers.image.url="https://github.com/connectors-io/connectors" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/ /etc/
COPY --from=build --chmod=1777 /out/tmp /tmp
COPY --from=build --chown=65532:65532 --chmod=700 /out/home/nonroot /home/nonroot
COPY --from=build --chown=65532:65532 --chmod=700 /out/home/nonroot /var/lib/connectors
COPY --from=build /out/connectors /usr/local/bin/connectors
ENV PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/connectors"]
