# Pretrained weights: fetched from the URL in the catalog (resources/weights.yaml) into
# resources/weights/ and checked against its pinned SHA-256 (a file already there with the right digest is used as is: offline clusters
# copy the files in). Config keys point at resources/weights/<file> to use them.


rule fetch_weights:
    output:
        "resources/weights/{file}",
    log:
        "logs/fetch_weights/{file}.log",
    wildcard_constraints:
        file="|".join(map(re.escape, catalog_files())),
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    shell:
        "syndface fetch-weights --from-catalog --out {output} > {log} 2>&1"
