"""M³SA-TF: multimodal sentiment analysis (M³SA) in Keras 3 / TensorFlow."""

from setuptools import find_packages, setup

setup(
    name="m3sa-tf",
    version="0.1.0",
    description=(
        "Reference Keras 3 / TensorFlow implementation of M³SA: multi-scale feature "
        "extraction, key-modality fusion and multi-task learning for multimodal "
        "sentiment analysis (CMU-MOSI, CH-SIMS, CMU-MOSEI)."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["msa_core*", "m3sa_tf*", "tfrecords*", "pipelines*", "tuning*"]),
    include_package_data=True,
    package_data={"tfrecords": ["builders/*/dummy_data/*", "builders/*/*.txt"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "keras-tuner>=1.4.8,<1.5",
        # 2.21.0 broke keras-hub's tokenizers.
        "tensorflow-text>=2.21.1,<2.22",
        "tensorflow-datasets>=4.9.10,<5",
        "keras-hub>=0.32,<0.33",
        # keras-hub reads Hugging Face checkpoints (the BERT text path) through it.
        "safetensors>=0.4",
        # TF no longer pulls it in, and keras-tuner fails every trial without it.
        "tensorboard>=2.21,<2.22",
        # keras-tuner's BayesianOptimization needs both.
        "scipy>=1.11",
        "scikit-learn>=1.3",
        "numpy>=1.26",
        "importlib_resources",
        "matplotlib>=3.8",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            # scripts/test.sh runs the suite on two worker processes.
            "pytest-xdist>=3.5",
            "tensorflow-serving-api>=2.21,<2.22",
            # tensorflow_datasets.testing (the builders' DatasetBuilderTestCase) imports it.
            "dill",
        ],
        "serving": ["tensorflow-serving-api>=2.21,<2.22"],
    },
    entry_points={
        "console_scripts": [
            "m3sa-build-data=tfrecords.build:main",
            "m3sa-train=pipelines.train:main",
            "m3sa-export=pipelines.export:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
