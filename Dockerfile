FROM python:3.11-slim
WORKDIR /opt/cloudlet
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir .
ENV CLOUDLET_HOST=0.0.0.0
EXPOSE 8000
CMD ["cloudlet", "serve"]
