import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    scope = {}
    with open(osp.join('hallucinet_plugin', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


with open('README.md', encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='hallucinet_plugin',
    version=get_version(),
    description='HalluciNet and MoNet feature hallucination for mmaction2',
    long_description=long_description,
    long_description_content_type='text/markdown',
    packages=find_packages(include=['hallucinet_plugin*']),
    python_requires='>=3.8',
    install_requires=[
        'torch>=1.13',
        'torchvision',
        'timm>=0.9',
        'mmengine>=0.10,<1.0',
        # The `mmcv` module: either full mmcv or mmcv-lite (no compiled ops),
        # which is what requirements.txt pins. mmaction2 1.1 needs < 2.1.
        'mmcv-lite>=2.0.0,<2.2.0',
        'mmaction2>=1.1.0,<1.3',
        'decord>=0.6.0',
        'numpy',
        'opencv-python',
        'lmdb>=1.4',
        'matplotlib',
        # Seed statistics (difference_ci) and rank correlation.
        'scipy',
    ],
    extras_require={
        'tests': ['pytest', 'pytest-xdist', 'ruff', 'import-linter'],
        'deploy': ['onnx', 'onnxruntime'],
        'docs': ['sphinx', 'myst-parser', 'furo', 'sphinx-copybutton'],
        'flow': ['opencv-contrib-python'],
        'tensorboard': ['tensorboard'],
        # YouTube-8M's frame-level TFRecords (FeatureSequenceDataset).
        'youtube8m': ['tfrecord>=1.14', 'crc32c'],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    zip_safe=False,
)
